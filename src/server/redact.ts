/**
 * Keeping the upstream's credentials inside the process: an upstream URL may carry them in its userinfo
 * (`https://user:key@host/`), its query (`?api_key=...`) or its fragment, and configured headers carry
 * them as values (`Authorization: Bearer ...`). What leaves the sidecar (Describe, error messages, logs,
 * metrics) shows URLs through {@link redactUrl} and passes free text through a {@link secretRedactor}.
 *
 * @module
 */

/** What a secret is replaced by. */
export const REDACTED = "REDACTED";

/**
 * Secrets shorter than this are not searched for in free text: they would match ordinary words and
 * numbers. They are still hidden wherever a URL is shown, which {@link redactUrl} does by position.
 */
export const MIN_SECRET_LENGTH = 4;

/**
 * `url` with its userinfo, every query value (a query item without `=` as a whole) and its fragment
 * replaced by {@link REDACTED}; the rest is kept as written. Works on text that does not parse as a URL.
 */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, `$1${REDACTED}@`)
    .replace(
      /([?&])([^=&#]*)(=?)([^&#]*)/g,
      (_, sep: string, name: string, eq: string) =>
        eq === "" ? `${sep}${REDACTED}` : `${sep}${name}=${REDACTED}`,
    )
    .replace(/#.+$/, `#${REDACTED}`);
}

/** The secrets in an upstream's settings: URL userinfo, query values and fragment; header values. */
export function upstreamSecrets(upstream: { url?: string; headers?: Record<string, string> }): string[] {
  const secrets: string[] = [];
  const url = upstream.url ?? "";
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url)?.[1];
  if (userinfo) secrets.push(userinfo, ...userinfo.split(":"));
  const query = /\?([^#]*)/.exec(url)?.[1] ?? "";
  for (const item of query.split("&")) {
    const value = item.includes("=") ? item.slice(item.indexOf("=") + 1) : item;
    secrets.push(value);
  }
  const fragment = /#(.+)$/.exec(url)?.[1];
  if (fragment) secrets.push(fragment);
  for (const value of Object.values(upstream.headers ?? {})) {
    // "Bearer <token>", "Basic <base64>": the credential alone may also be echoed back.
    secrets.push(value, ...value.trim().split(/\s+/).slice(1));
  }
  return secrets;
}

/**
 * A function replacing every occurrence of each secret (as given, and percent-decoded) in a text by
 * {@link REDACTED}; secrets shorter than {@link MIN_SECRET_LENGTH} are ignored.
 */
export function secretRedactor(secrets: Iterable<string>): (text: string) => string {
  const all = new Set<string>();
  for (const secret of secrets) {
    all.add(secret);
    all.add(safeDecode(secret));
    all.add(encodeURIComponent(safeDecode(secret)));
  }
  // Longest first, so that a secret containing another is replaced whole.
  const sorted = [...all].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  if (sorted.length === 0) return (text) => text;
  return (text) => sorted.reduce((t, secret) => t.split(secret).join(REDACTED), text);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}
