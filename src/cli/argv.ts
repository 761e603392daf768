/**
 * docker-style argument splitting for `run`/`exec`: flags come before the image, and everything
 * after the image is the container's command, even when it looks like a flag (`sh -c …`).
 * oclif parses all tokens, so the command splits argv itself at the first positional argument.
 */
export interface FlagShape {
  char?: string;
  type: 'boolean' | 'option';
}

export function splitAtFirstPositional(argv: string[], flags: Record<string, FlagShape>): { head: string[]; rest: string[] } {
  const takesValue = new Set<string>();
  for (const [name, f] of Object.entries(flags)) {
    if (f.type !== 'option') continue;
    takesValue.add(`--${name}`);
    if (f.char) takesValue.add(`-${f.char}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { head: [...argv.slice(0, i), ...argv.slice(i + 1, i + 2)], rest: argv.slice(i + 2) };
    if (!a.startsWith('-') || a === '-') return { head: argv.slice(0, i + 1), rest: argv.slice(i + 1) };
    if (a.includes('=')) continue;
    if (takesValue.has(a)) {
      i++;
      continue;
    }
    // Bundled short flags (-it, -e…): a value-taking char at the end takes the next token.
    if (/^-[a-zA-Z]{2,}$/.test(a) && takesValue.has(`-${a.at(-1)}`)) i++;
  }
  return { head: argv, rest: [] };
}
