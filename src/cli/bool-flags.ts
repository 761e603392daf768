// Boolean flags in docker's spelling.
/** docker's `--flag=false` / `--flag=true` for boolean flags, which oclif spells `--no-flag` / `--flag`. */
export function boolFlagValues(argv: string[], names: string[]): string[] {
  return argv.map((a) => {
    const m = /^--([a-z-]+)=(true|false)$/.exec(a);
    return m && names.includes(m[1]!) ? (m[2] === 'true' ? `--${m[1]}` : `--no-${m[1]}`) : a;
  });
}
