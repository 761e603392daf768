/** kill: one signal to the container's init (default SIGKILL), only if its pid is still the init's. */
import { constants } from 'node:os';
import type { EngineRoots } from '../state/paths.js';
import { signalProcess } from '../state/proc.js';
import { fail } from '../util/errors.js';
import { containerStore, isActive, reconcile, openCgroup } from './reconcile.js';
import { markStopped } from './detached.js';

/** "KILL", "SIGKILL", "9" → a signal name or number. */
export function parseSignal(s: string): NodeJS.Signals | number {
  if (/^[0-9]+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw fail('EINVAL', `invalid signal "${s}"`);
    return n;
  }
  const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : 'SIG' + s.toUpperCase()) as NodeJS.Signals;
  if (!(name in constants.signals)) throw fail('EINVAL', `invalid signal "${s}"`);
  return name;
}

export async function killContainer(roots: EngineRoots, ref: string, signal = 'SIGKILL'): Promise<string> {
  const sig = parseSignal(signal);
  const containers = containerStore(roots);
  const { rec: locked, release } = await containers.findAndLock(ref);
  const { id } = locked;
  try {
    const rec = await reconcile(containers, locked);
    if (!isActive(rec) || !rec.pid || rec.pidStart === undefined) throw fail('ESTATE', `cannot kill container ${ref}: container ${rec.id.slice(0, 12)} is not running`);
    if (sig === 'SIGKILL' || sig === 9) {
      await containers.save({ ...rec, stoppedByUser: true });
      await markStopped(containers.containerDir(id)); // a killed container is not restarted by its policy
    }
    if (rec.state === 'paused' && (sig === 'SIGKILL' || sig === 9)) await (await openCgroup(rec))?.thaw().catch(() => undefined);
    if (!signalProcess(rec.pid, rec.pidStart, sig)) throw fail('ESTATE', `cannot kill container ${ref}: it is not running`);
    return rec.id;
  } finally {
    release();
  }
}
