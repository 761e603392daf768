import { Command, Flags, Interfaces } from '@oclif/core';
import { defaultRoots, type EngineRoots } from '../state/paths.js';
import { TspodError, messageOf } from '../util/errors.js';

// oclif's own FlagOutput and ArgOutput (its interfaces module does not export them).
type FlagOutput = { [name: string]: any };
type ArgOutput = { [name: string]: any };

/**
 * Base of every command: the global flags, and the mapping of engine errors to one line on
 * stderr plus an exit code, as `docker run` does: 125 for an engine error, 126 when the command
 * cannot be executed, 127 when it is not found.
 */
export abstract class TspodCommand extends Command {
  /** Exit status for an engine error: docker's CLI uses 1, and 125 for `run`. */
  static engineErrorExit = 1;

  static override baseFlags = {
    root: Flags.string({
      description: 'data root for images and containers',
      env: 'TSPOD_ROOT',
      helpGroup: 'GLOBAL',
    }),
    runroot: Flags.string({
      description: 'runtime state directory',
      env: 'TSPOD_RUNROOT',
      helpGroup: 'GLOBAL',
    }),
    'log-level': Flags.option({
      options: ['error', 'warn', 'info', 'debug'] as const,
      default: 'warn' as const,
      helpGroup: 'GLOBAL',
    })(),
  };

  /**
   * oclif sorts `argv` by each token's first occurrence, which groups a repeated argument together
   * (`rm a b a` gives a, a, b); docker works through its arguments, and reports, in the order given.
   * The raw tokens keep that order (an unknown flag is an error, so nothing else is in argv).
   */
  protected override async parse<F extends FlagOutput, B extends FlagOutput, A extends ArgOutput>(
    options?: Interfaces.Input<F, B, A>, argv?: string[]): Promise<Interfaces.ParserOutput<F, B, A>> {
    const out = await super.parse(options, argv);
    return { ...out, argv: out.raw.flatMap((t) => (t.type === 'arg' ? [t.input] : [])) };
  }

  protected roots(flags: { root?: string; runroot?: string }): EngineRoots {
    const d = defaultRoots();
    return { root: flags.root ?? d.root, runroot: flags.runroot ?? d.runroot };
  }

  protected override async catch(err: Interfaces.CommandError & { code?: unknown }): Promise<unknown> {
    if (err instanceof TspodError) {
      process.stderr.write(`tspod: ${err.message}\n`);
      process.exitCode = exitCodeFor(err, (this.constructor as typeof TspodCommand).engineErrorExit);
      return;
    }
    // oclif's own errors (bad flags, unknown command) carry an exit code of their own.
    const oclifExit = (err as { oclif?: { exit?: number } }).oclif?.exit;
    if (typeof oclifExit === 'number' && Array.isArray((err as { args?: unknown }).args) && /^Missing \d+ required arg/.test(messageOf(err))) {
      // as docker: `"docker rm" requires at least 1 argument.`, with the command's error status
      const ctor = this.constructor as typeof TspodCommand;
      const needed = Object.values(ctor.args ?? {}).filter((a) => a.required).length;
      const name = `tspod ${(this.id ?? '').split(':').join(' ')}`.trim();
      process.stderr.write(`tspod: "${name}" requires ${ctor.strict === false ? 'at least' : 'exactly'} ${needed} argument${needed === 1 ? '' : 's'}; see '${name} --help'\n`);
      process.exitCode = ctor.engineErrorExit;
      return;
    }
    if (typeof oclifExit === 'number') {
      if (oclifExit === 0) return;
      // oclif's flag errors span lines ("Parsing --x\n Expected …\nSee more help with --help"): one line.
      const text = messageOf(err).split('\n').map((l) => l.trim()).filter((l) => l && !/^See more help/.test(l)).join(': ');
      process.stderr.write(`tspod: ${text}\n`);
      process.exitCode = 125;
      return;
    }
    process.stderr.write(`tspod: ${messageOf(err)}\n`);
    if (process.env.TSPOD_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = (this.constructor as typeof TspodCommand).engineErrorExit;
  }
}

export function exitCodeFor(err: TspodError, engineErrorExit = 125): number {
  if (err.code === 'ENOEXEC') return 126;
  if (err.code === 'ENOCMD') return 127;
  return engineErrorExit;
}
