/**
 * The wire JSON of an event: its body object `{name,args,namespace}` with `"id"` appended
 * (the order the README documents). Built by splicing text so an event is serialized once for all its connections.
 */
export function withId(id: string, body: string): string {
  const idField = `"id":${JSON.stringify(id)}`;
  if (/^\{\s*\}$/.test(body)) return `{${idField}}`;
  if (body.endsWith('}')) return `${body.slice(0, -1)},${idField}}`;
  return JSON.stringify({ ...(JSON.parse(body) as object), id });
}
