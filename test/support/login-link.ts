/**
 * Follows a one-time sign-in link as a browser does, without one: GET the link (the page with the
 * Sign in button), then POST the form that page holds. The form is read from the page, not
 * rebuilt from the URL, so a page that lost its button or its token fails here.
 */
export async function followLoginLink(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const page = await fetch(url, { redirect: 'manual' });
  const html = await page.text();
  const form = /<form method="post" action="([^"]+)"><input type="hidden" name="token" value="([^"]*)">/.exec(html);
  if (page.status !== 200 || !form) return new Response(html, { status: page.status, headers: page.headers });
  return fetch(new URL(form[1], url), {
    method: 'POST', redirect: 'manual', body: new URLSearchParams({ token: form[2] }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}
