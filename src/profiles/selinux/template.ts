/**
 * The container template the generated policies inherit (udica's `base_container.cil`, narrowed
 * and renamed so that it never clashes with udica's own templates on a host that has them). It
 * names types of the host's reference policy (`container_runtime_t`, `container_file_t`,
 * `unreserved_port_t`, `reserved_port_t`, `dns_port_t`): the host loads it once with
 * `semodule -i`, next to each app's policy.
 */
export const TEMPLATE_BLOCK = 'ct_container';

export const CONTAINER_TEMPLATE_CIL = `; Cerro Torre container template (udica base_container.cil style).
(block ${TEMPLATE_BLOCK}
    (blockabstract ${TEMPLATE_BLOCK})
    (type process)
    (type socket)
    (roletype system_r process)
    (typeattributeset domain (process))
    (typeattributeset container_domain (process))
    (typeattributeset svirt_sandbox_domain (process))
    (allow container_runtime_t process (process (transition)))
    (allow process process (process (signal sigchld)))
    (allow process container_file_t (file (read open getattr execute entrypoint map)))
    (allow process container_file_t (dir (read search getattr open)))
)
(block ${TEMPLATE_BLOCK}_net
    (blockabstract ${TEMPLATE_BLOCK}_net)
    (allow process process (tcp_socket (create bind listen accept connect read write getattr setopt)))
    (allow process process (udp_socket (create bind connect read write getattr setopt)))
    (allow process dns_port_t (udp_socket (name_bind)))
)
`;
