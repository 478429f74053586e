/** The text a host signs for an HTTP request to the server: method, path and time, one per line. */
export function hostRequestText(method: string, path: string, time: string): string {
  return `${method}\n${path}\n${time}`;
}
