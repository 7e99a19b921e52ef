/**
 * Pre-tokenizer regexes (the split before BPE) by family, plus a translation of the
 * patterns tokenizer.json files carry into JavaScript syntax.
 */

const CONTRACTIONS_CI = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/** By GGUF `tokenizer.ggml.pre`. */
const BY_NAME: Record<string, string> = {
  qwen2: `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  "llama-bpe": `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  default: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
};
BY_NAME["gpt2"] = BY_NAME["default"]!;
BY_NAME["llama3"] = BY_NAME["llama-bpe"]!;
BY_NAME["smaug-bpe"] = BY_NAME["llama-bpe"]!;
BY_NAME["deepseek-r1-qwen"] = BY_NAME["qwen2"]!;

export function pretokenizerPattern(name: string | undefined): string {
  return BY_NAME[name ?? "default"] ?? BY_NAME["default"]!;
}

/** Rewrites `(?i:...)` groups (unsupported by Node 20's regexes) into explicit case classes. */
export function toJsPattern(pattern: string): string {
  let out = "";
  for (let i = 0; i < pattern.length;) {
    if (pattern.startsWith("(?i:", i)) {
      let depth = 1,
        j = i + 4,
        inner = "";
      while (j < pattern.length && depth > 0) {
        const ch = pattern[j]!;
        if (ch === "\\") {
          inner += ch + pattern[j + 1];
          j += 2;
          continue;
        }
        if (ch === "(") depth++;
        if (ch === ")") {
          depth--;
          if (depth === 0) break;
        }
        inner += ch;
        j++;
      }
      let conv = "",
        inClass = false;
      for (let k = 0; k < inner.length; k++) {
        const ch = inner[k]!;
        if (ch === "\\") {
          conv += ch + inner[k + 1];
          k++;
          continue;
        }
        if (ch === "[") inClass = true;
        if (ch === "]") inClass = false;
        conv += !inClass && /[a-zA-Z]/.test(ch) ? `[${ch.toLowerCase()}${ch.toUpperCase()}]` : ch;
      }
      out += `(?:${conv})`;
      i = j + 1;
    } else if (pattern[i] === "\\") {
      out += pattern.slice(i, i + 2);
      i += 2;
    } else {
      out += pattern[i];
      i++;
    }
  }
  return out;
}

export function compilePretokenizer(pattern: string): RegExp {
  return new RegExp(toJsPattern(pattern), "gu");
}
