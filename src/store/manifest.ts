/** Ollama's manifest schema (Docker distribution v2 with Ollama's layer media types). */

export const MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json";
export const CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json";

export const MediaType = {
  model: "application/vnd.ollama.image.model",
  template: "application/vnd.ollama.image.template",
  system: "application/vnd.ollama.image.system",
  params: "application/vnd.ollama.image.params",
  messages: "application/vnd.ollama.image.messages",
  license: "application/vnd.ollama.image.license",
  adapter: "application/vnd.ollama.image.adapter",
  projector: "application/vnd.ollama.image.projector",
} as const;

const KNOWN = new Set<string>(Object.values(MediaType));

export interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  from?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Layer;
  layers: Layer[];
}

/** The config blob: what `/api/tags` and `/api/show` report as details. */
export interface ModelConfig {
  model_format: string;
  model_family: string;
  model_families: string[];
  model_type: string;
  file_type: string;
  architecture: string;
  os: string;
  rootfs: { type: "layers"; diff_ids: string[] };
}

function isLayer(x: unknown): x is Layer {
  const l = x as Layer;
  return (
    typeof l === "object" &&
    l !== null &&
    typeof l.mediaType === "string" &&
    typeof l.digest === "string" &&
    Number.isSafeInteger(l.size) &&
    l.size >= 0
  );
}

/** Parses and checks a manifest; unknown layer media types are an error, not ignored. */
export function parseManifest(text: string, where: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: the manifest is not valid JSON (${(e as Error).message})`);
  }
  if (
    typeof m !== "object" ||
    m === null ||
    m.schemaVersion !== 2 ||
    !isLayer(m.config) ||
    !Array.isArray(m.layers)
  )
    throw new Error(`${where}: not a schema-2 model manifest`);
  for (const l of m.layers) {
    if (!isLayer(l)) throw new Error(`${where}: a layer lacks mediaType, digest or size`);
    if (!KNOWN.has(l.mediaType)) throw new Error(`${where}: unknown layer media type "${l.mediaType}"`);
  }
  return m;
}
