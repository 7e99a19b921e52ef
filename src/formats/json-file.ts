/** Reads a model's JSON side files (config, tokenizer, generation config) with file-naming errors. */
import { existsSync, readFileSync } from "node:fs";
import { ModelFileError } from "./tensor-source.js";

export function readJsonFile(path: string): Record<string, any> {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ModelFileError(path, `cannot read JSON: ${(e as Error).message}`);
  }
}

/** undefined when the file does not exist; a ModelFileError when it exists but is not JSON. */
export function readJsonFileIf(path: string): Record<string, any> | undefined {
  return existsSync(path) ? readJsonFile(path) : undefined;
}
