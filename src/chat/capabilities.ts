/** What a model can do, as `/api/show` reports it, judged from its template and metadata. */

export function capabilities(template: string | undefined, o: { embedding?: boolean } = {}): string[] {
  const caps = ["completion"];
  if (template && /\btools\b/.test(template)) caps.push("tools");
  if (template && template.includes("<think>")) caps.push("thinking");
  if (o.embedding) caps.push("embedding");
  return caps;
}
