/**
 * Builds a named model from a Modelfile: weights from a GGUF file, a Hugging Face folder
 * (converted to GGUF) or an existing model, optionally quantized; then template, system,
 * parameters, messages and license layers. Blobs are written first and the manifest last,
 * so an interrupted create leaves nothing visible (stray temporaries are collected later).
 */
import { existsSync, rmSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { runConversion } from "../formats/convert-worker.js";
import { collectImportance } from "../formats/importance.js";
import { fileTypeName, formatParameterSize, parameterCount } from "../formats/gguf/file-type.js";
import { readGguf } from "../formats/gguf/read.js";
import { QUANTIZE_TYPES, type QuantizeType } from "../formats/quantize-model.js";
import { DEFAULT_MODEL_PATH } from "../model.js";
import { addParameter } from "../runner/ollama-options.js";
import { ChatTemplate } from "../tokenizer/chat-template.js";
import { diskError } from "./blob.js";
import { MediaType, type Layer, type ModelConfig } from "./manifest.js";
import { parseModelfile, type Modelfile } from "./modelfile.js";
import { normalizeName } from "./name.js";
import type { ModelStore, StoredModel } from "./store.js";

/** The embedded model answers to this name when the store has no model of that name. */
export const EMBEDDED_MODEL_NAME = "tiny-qwen3";

export interface CreateOptions {
  /** Folder relative FROM paths are resolved against (the Modelfile's). */
  baseDir?: string;
  quantize?: string;
  /** A text to collect importance statistics from before quantizing (FP4 types use them). */
  calibration?: string;
  /** Status lines, as Ollama's create streams them. */
  onStatus?: (status: string) => void;
  /** Tensor progress while converting or quantizing. */
  onTensor?: (i: number, n: number, name: string) => void;
}

export class CreateError extends Error {}

/** Ollama TEMPLATEs are Go templates; lmx renders Jinja (Hugging Face) templates. */
function checkTemplate(t: string): void {
  if (/\{\{-?\s*(\.[A-Z]|range |if \.|end\b)/.test(t))
    throw new CreateError(
      "TEMPLATE looks like a Go template ({{ .Prompt }} …); lmx takes Hugging Face Jinja chat templates ({{ messages }}, {% for %} …)",
    );
  try {
    new ChatTemplate(t);
  } catch (e) {
    throw new CreateError(`TEMPLATE: ${(e as Error).message}`);
  }
}

export async function createModel(
  store: ModelStore,
  rawName: string,
  modelfile: string | Modelfile,
  o: CreateOptions = {},
): Promise<StoredModel> {
  const name = normalizeName(rawName);
  const mf = typeof modelfile === "string" ? parseModelfile(modelfile) : modelfile;
  const status = o.onStatus ?? (() => {});
  if (!mf.from) throw new CreateError("the Modelfile has no FROM line");
  if (mf.adapter) throw new CreateError("ADAPTER (LoRA) is not supported yet");
  if (o.quantize && !QUANTIZE_TYPES.includes(o.quantize as QuantizeType))
    throw new CreateError(
      `unknown quantization type "${o.quantize}" (expected ${QUANTIZE_TYPES.join(", ")})`,
    );
  if (mf.template !== undefined) checkTemplate(mf.template);

  const layers: Layer[] = [];
  let base: StoredModel | undefined;
  let weightsPath: string | undefined;
  const fromPath = isAbsolute(mf.from) ? mf.from : resolve(o.baseDir ?? process.cwd(), mf.from);
  // A path that exists wins over a model name (as Ollama resolves FROM).
  if (/^[./~]/.test(mf.from) || isAbsolute(mf.from) || existsSync(fromPath)) {
    if (!existsSync(fromPath)) throw new CreateError(`FROM ${mf.from}: no such file or folder`);
    weightsPath = fromPath;
  } else {
    base = isName(mf.from) ? store.get(mf.from) : undefined;
    if (!base) {
      if (mf.from === EMBEDDED_MODEL_NAME || mf.from === `${EMBEDDED_MODEL_NAME}:latest`)
        weightsPath = DEFAULT_MODEL_PATH;
      else throw new CreateError(`FROM ${mf.from}: no such model in the store, and no such file or folder`);
    }
  }

  let temp: string | undefined;
  try {
    let modelLayer: Layer;
    if (base && !o.quantize) {
      const l = store.layer(base, MediaType.model);
      if (!l) throw new CreateError(`FROM ${mf.from}: the model has no weights`);
      status(`using existing layer ${l.digest}`);
      modelLayer = l;
    } else {
      const src = weightsPath ?? store.modelPath(base!);
      const isDir = statSync(src).isDirectory();
      if (o.quantize) {
        let importance: Map<string, Float32Array> | undefined;
        if (o.calibration !== undefined) {
          status("collecting importance statistics from the calibration text");
          importance = await collectImportance(src, o.calibration);
        }
        status(`quantizing model to ${o.quantize}`);
        temp = store.blobs.tempPath();
        await runConversion(
          { kind: "quantize", src, out: temp, type: o.quantize as QuantizeType, importance },
          o.onTensor,
        );
      } else if (isDir) {
        status("converting model");
        temp = store.blobs.tempPath();
        await runConversion({ kind: "convert", src, out: temp }).catch(sourceError);
      }
      if (temp) {
        status("creating model layer");
        const ref = await store.blobs.adopt(temp);
        temp = undefined;
        modelLayer = { mediaType: MediaType.model, ...ref };
      } else {
        readGguf(src); // a clear error for a file that is not a GGUF, before copying it
        const inStore = store.blobs.digestOf(src);
        if (inStore) {
          // Already a verified blob (uploaded or pulled): used in place, not copied.
          status(`using existing layer ${inStore}`);
          modelLayer = { mediaType: MediaType.model, digest: inStore, size: statSync(src).size };
        } else {
          status("copying model file");
          modelLayer = { mediaType: MediaType.model, ...(await store.blobs.writeFile(src)) };
        }
      }
    }
    layers.push(modelLayer);
    const g = readGguf(store.blobs.path(modelLayer.digest));
    const arch = String(g.metadata.get("general.architecture") ?? "unknown");

    const inherited = (mt: string) => (base ? store.layer(base, mt) : undefined);
    const textLayer = async (mt: string, text: string | undefined) => {
      if (text !== undefined) layers.push({ mediaType: mt, ...(await store.blobs.writeBytes(text)) });
      else {
        const l = inherited(mt);
        if (l) layers.push(l);
      }
    };
    await textLayer(MediaType.template, mf.template);
    await textLayer(MediaType.system, mf.system);
    const params: Record<string, unknown> = base
      ? JSON.parse(store.text(base, MediaType.params) ?? "{}")
      : {};
    const fresh: Record<string, unknown> = {};
    for (const [k, v] of mf.parameters) addParameter(fresh, k, v);
    Object.assign(params, fresh);
    if (Object.keys(params).length)
      layers.push({ mediaType: MediaType.params, ...(await store.blobs.writeBytes(JSON.stringify(params))) });
    await textLayer(MediaType.messages, mf.messages.length ? JSON.stringify(mf.messages) : undefined);
    if (mf.license.length) for (const l of mf.license) await textLayer(MediaType.license, l);
    else
      for (const l of base?.manifest.layers.filter((x) => x.mediaType === MediaType.license) ?? [])
        layers.push(l);

    const config: Omit<ModelConfig, "rootfs"> = {
      model_format: "gguf",
      model_family: arch,
      model_families: [arch],
      model_type: formatParameterSize(parameterCount(g)),
      file_type: fileTypeName(g),
      architecture: process.arch === "x64" ? "amd64" : process.arch,
      os: process.platform,
    };
    status("writing manifest");
    const m = await store.put(name, config, layers);
    status("success");
    return m;
  } catch (e) {
    throw diskError(e, store.root);
  } finally {
    if (temp) rmSync(temp, { force: true });
  }
}

/** A failure reading the source model is the caller's to fix (errors from the worker lose their class); file-system errors keep theirs. */
function sourceError(e: unknown): never {
  if (/^E[A-Z]+$/.test(String((e as NodeJS.ErrnoException)?.code))) throw e;
  throw new CreateError((e as Error).message);
}

function isName(s: string): boolean {
  try {
    normalizeName(s);
    return true;
  } catch {
    return false;
  }
}
