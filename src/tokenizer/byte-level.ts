/** GPT-2's reversible byte <-> printable-character map used by byte-level BPE vocabularies. */

const toChar: string[] = [];
const toByte = new Map<string, number>();
{
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const cp = keep.includes(b) ? b : 256 + extra++;
    toChar[b] = String.fromCodePoint(cp);
    toByte.set(toChar[b]!, b);
  }
}

/** UTF-8 bytes of `text` as byte-level characters. */
export function bytesToUnicode(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += toChar[b];
  return s;
}

/** The bytes a byte-level token string stands for (unknown characters become their UTF-8). */
export function unicodeToBytes(token: string): number[] {
  const out: number[] = [];
  for (const ch of token) {
    const b = toByte.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...new TextEncoder().encode(ch));
  }
  return out;
}
