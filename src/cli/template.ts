/**
 * The part of Go's text/template that docker's `--format` is used with: text, `{{.Field.Sub}}`,
 * `{{.}}`, `{{json .X}}`, `{{upper .X}}`, `{{lower .X}}`, `{{index .Map "key"}}`, and the `table `
 * prefix (a header row and aligned columns, for list commands). Written `\t` and `\n` become a tab and
 * a newline, as docker does. Anything else is refused in one line naming the template; a missing field
 * prints `<no value>`, as Go prints a map's.
 */
import { fail, messageOf } from '../util/errors.js';
import { table } from './format.js';

const FUNCTIONS = ['value', 'json', 'upper', 'lower', 'index'] as const;
type Fn = (typeof FUNCTIONS)[number];
type Action = { kind: 'text'; text: string } | { kind: 'call'; fn: Fn; path: string[]; key?: string };

export interface Template {
  /** `table …`: the caller prints a header row (header()) and aligns the columns. */
  table: boolean;
  render(data: unknown): string;
  /** The header row of a table: docker's column name for each field (or the field name in capitals). */
  header(names?: Record<string, string>): string;
}

const ACTION_RE = /\{\{-?\s*(.*?)\s*-?\}\}/g;

export function parseTemplate(source: string): Template {
  let text = source.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const table = text.startsWith('table ');
  if (table) text = text.slice('table '.length);
  const actions: Action[] = [];
  let last = 0;
  for (const m of text.matchAll(ACTION_RE)) {
    if (m.index! > last) actions.push({ kind: 'text', text: text.slice(last, m.index) });
    actions.push(parseAction(m[1]!, source));
    last = m.index! + m[0].length;
  }
  const rest = text.slice(last);
  if (rest.includes('{{') || rest.includes('}}')) throw invalid(source, 'an unclosed action');
  if (rest) actions.push({ kind: 'text', text: rest });
  return {
    table,
    render: (data) => actions.map((a) => (a.kind === 'text' ? a.text : call(a, data))).join(''),
    header: (names = {}) => actions.map((a) => {
      if (a.kind === 'text') return a.text;
      const field = a.path[a.path.length - 1] ?? '';
      return names[field] ?? field.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
    }).join(''),
  };
}

/**
 * The output of a template for a list of values: a line each; for `table …`, a header row (`headers`:
 * docker's column names) and aligned columns. Every --format/-f of the CLI prints through here.
 */
export function renderTemplate(template: Template, items: unknown[], headers?: Record<string, string>): string {
  const rows = items.map((i) => template.render(i));
  if (!template.table) return rows.map((r) => r + '\n').join('');
  return table(template.header(headers).split('\t'), rows.map((r) => r.split('\t')));
}

/**
 * inspect's output (container, image, volume): a JSON array indented as docker's, or with -f the
 * template (parsed before any work, so a bad one is refused first) rendered for each value.
 */
export function inspectOutput(items: unknown[], template?: Template): string {
  return template ? renderTemplate(template, items) : JSON.stringify(items, null, 4) + '\n';
}

/**
 * The inspect commands' loop: `lookup` each name; one line on stderr for a name that fails, the others
 * still printed (inspectOutput, with the -f `format`); exit status 1 when any failed, as docker's.
 */
export async function printInspected(names: string[], format: string | undefined, lookup: (name: string) => Promise<unknown>): Promise<void> {
  const template = format !== undefined ? parseTemplate(format) : undefined; // refused before any lookup
  const out: unknown[] = [];
  for (const name of names) {
    try {
      out.push(await lookup(name));
    } catch (err) {
      process.stderr.write(`tspod: ${messageOf(err)}\n`);
      process.exitCode = 1;
    }
  }
  process.stdout.write(inspectOutput(out, template));
}

function parseAction(body: string, source: string): Action {
  const words = body.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  const fn = words.length > 1 ? words[0]! : 'value';
  const args = words.length > 1 ? words.slice(1) : words;
  if (CONTROL.includes(words[0]!)) throw invalid(source, `"${words[0]}": actions such as range, if, with are not supported (tspod knows fields and json, upper, lower, index; {{json .X}} gives the whole value)`);
  if (!(FUNCTIONS as readonly string[]).includes(fn) || fn === 'value' && words.length > 1) throw invalid(source, `the function "${fn}" (tspod knows json, upper, lower, index)`);
  const path = args[0];
  if (path === undefined || !/^\.([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?$/.test(path)) throw invalid(source, `"${body}" (want .Field.Sub, or a function and one)`);
  const parts = path === '.' ? [] : path.slice(1).split('.');
  if (fn === 'index') {
    if (args.length !== 2 || !/^".*"$/.test(args[1]!)) throw invalid(source, `"${body}" (want index .Map "key")`);
    return { kind: 'call', fn, path: parts, key: JSON.parse(args[1]!) as string };
  }
  if (args.length !== 1) throw invalid(source, `"${body}" (one argument)`);
  return { kind: 'call', fn: fn as Fn, path: parts };
}

function call(a: Action & { kind: 'call' }, data: unknown): string {
  let v: unknown = data;
  for (const p of a.path) v = v !== null && typeof v === 'object' && p in v ? (v as Record<string, unknown>)[p] : undefined;
  if (a.fn === 'index') v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[a.key!] : undefined;
  if (a.fn === 'json') return JSON.stringify(v ?? null);
  const s = show(v);
  return a.fn === 'upper' ? s.toUpperCase() : a.fn === 'lower' ? s.toLowerCase() : s;
}

/** Go's %v as docker prints a value: a list as [a b], an object as map[k:v …] with its keys sorted. */
function show(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.keys(v).sort().map((k) => `${k}:${show((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  return String(v);
}

/** Go template actions tspod does not implement: named in the error, not taken for unknown functions. */
const CONTROL = ['range', 'if', 'with', 'else', 'end', 'define', 'template', 'block', 'len', 'printf', 'print', 'println', 'eq', 'ne', 'not', 'and', 'or'];

function invalid(source: string, what: string) {
  return fail('EINVAL', `invalid --format template ${JSON.stringify(source)}: ${what}`);
}
