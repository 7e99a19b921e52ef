/**
 * Model names as Ollama writes them: `[host/][namespace/]model[:tag]`, defaulting to
 * `registry.ollama.ai/library/…:latest`. Every part is checked so that a name can never
 * address a path outside the store.
 */

export const DEFAULT_HOST = "registry.ollama.ai";
export const DEFAULT_NAMESPACE = "library";
export const DEFAULT_TAG = "latest";

export interface ModelName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

export class InvalidNameError extends Error {}

const PART = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$/;
const HOST = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,253}(:[0-9]{1,5})?$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function check(ok: boolean, raw: string, why: string): void {
  if (!ok) throw new InvalidNameError(`invalid model name "${raw}": ${why}`);
}

export function parseModelName(raw: string): ModelName {
  check(typeof raw === "string" && raw.length > 0 && raw.length <= 350, String(raw), "empty or too long");
  let rest = raw.trim();
  // A digest suffix (`name@sha256:…`) is not supported for local names.
  check(!rest.includes("@"), raw, "digests are not accepted in names");
  let tag = DEFAULT_TAG;
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split("/");
  check(parts.length >= 1 && parts.length <= 3, raw, "expected [host/][namespace/]model[:tag]");
  const model = parts.pop()!;
  const namespace = parts.pop() ?? DEFAULT_NAMESPACE;
  const host = parts.pop() ?? DEFAULT_HOST;
  check(
    PART.test(model),
    raw,
    "the model part must start with a letter or digit and use only letters, digits, '_', '.', '-'",
  );
  check(PART.test(namespace), raw, "the namespace must use only letters, digits, '_', '.', '-'");
  check(HOST.test(host), raw, "invalid host");
  check(TAG.test(tag), raw, "the tag must use only letters, digits, '_', '.', '-'");
  for (const p of [host, namespace, model, tag])
    check(p !== "." && p !== ".." && !p.includes(".."), raw, "'..' is not allowed");
  return { host, namespace, model, tag };
}

/** The short form users type: defaults left out, the tag always shown. */
export function displayName(n: ModelName): string {
  const prefix =
    n.host === DEFAULT_HOST
      ? n.namespace === DEFAULT_NAMESPACE
        ? ""
        : `${n.namespace}/`
      : `${n.host}/${n.namespace}/`;
  return `${prefix}${n.model}:${n.tag}`;
}

/** Normalizes a user-typed name to its display form (throws InvalidNameError). */
export function normalizeName(raw: string): string {
  return displayName(parseModelName(raw));
}

/** Path segments of the manifest under `manifests/`. */
export function manifestSegments(n: ModelName): string[] {
  return [n.host, n.namespace, n.model, n.tag];
}
