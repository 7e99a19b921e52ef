/** A model name as the runtime needs it: weights path plus the store's params, system, messages, template. */
import { existsSync } from "node:fs";
import { DEFAULT_MODEL_PATH } from "../model.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { EMBEDDED_MODEL_NAME } from "./create-model.js";
import { MediaType } from "./manifest.js";
import { normalizeName } from "./name.js";
import { ModelNotFoundError, type ModelStore, type StoredModel } from "./store.js";

export interface ResolvedModel {
  name: string;
  path: string;
  /** Manifest digest ("embedded" for the built-in model). */
  digest: string;
  template?: string;
  params: Record<string, unknown>;
  system?: string;
  messages: ChatMessage[];
  stored?: StoredModel;
}

/** Throws InvalidNameError for a bad name and ModelNotFoundError when absent. */
export function resolveStored(store: ModelStore, raw: string): ResolvedModel {
  const name = normalizeName(raw);
  const stored = store.get(name);
  if (!stored) {
    if (name === `${EMBEDDED_MODEL_NAME}:latest` && existsSync(DEFAULT_MODEL_PATH))
      return { name, path: DEFAULT_MODEL_PATH, digest: "embedded", params: {}, messages: [] };
    throw new ModelNotFoundError(raw);
  }
  const text = (mt: string) => store.text(stored, mt);
  let params: Record<string, unknown>, messages: ChatMessage[];
  try {
    params = JSON.parse(text(MediaType.params) ?? "{}");
    messages = JSON.parse(text(MediaType.messages) ?? "[]");
  } catch (e) {
    throw new Error(`model '${name}' has a corrupt params or messages layer: ${(e as Error).message}`);
  }
  return {
    name,
    path: store.modelPath(stored),
    digest: stored.digest,
    template: text(MediaType.template),
    params,
    system: text(MediaType.system),
    messages,
    stored,
  };
}
