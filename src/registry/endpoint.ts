/**
 * Where a model name lives remotely: `https://<host>/v2/<namespace>/<model>/…` (OCI
 * distribution paths, as Ollama's registry serves them). LMX_REGISTRY replaces the base
 * URL for names on the default host; `insecure` allows plain HTTP.
 */
import { DEFAULT_HOST, parseModelName, type ModelName } from "../store/name.js";

export interface Endpoint {
  name: ModelName;
  base: string;
  repo: string;
}

export function endpointFor(raw: string, o: { insecure?: boolean } = {}): Endpoint {
  const name = parseModelName(raw);
  let base: string;
  if (name.host === DEFAULT_HOST && process.env.LMX_REGISTRY)
    base = process.env.LMX_REGISTRY.replace(/\/+$/, "");
  else base = `${o.insecure ? "http" : "https"}://${name.host}`;
  if (base.startsWith("http://") && !o.insecure && !(name.host === DEFAULT_HOST && process.env.LMX_REGISTRY))
    throw new Error("plain HTTP registries need --insecure");
  return { name, base, repo: `${name.namespace}/${name.model}` };
}

export const manifestUrl = (e: Endpoint) => `${e.base}/v2/${e.repo}/manifests/${e.name.tag}`;
export const blobUrl = (e: Endpoint, digest: string) => `${e.base}/v2/${e.repo}/blobs/${digest}`;
export const uploadUrl = (e: Endpoint) => `${e.base}/v2/${e.repo}/blobs/uploads/`;
