/** Kubernetes' rules for names (RFC 1123), for every check of a name kubesnap makes. */

/** A DNS label (RFC 1123): namespace and container names. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/

/** A Kubernetes object name (DNS subdomain). */
export const OBJECT_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/
