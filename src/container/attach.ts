/**
 * attach (and start -a): the client side of the monitor's attach socket (native/monitor.c,
 * attach-io.ts). Output frames go to stdout/stderr; with a container's stdin open (-i) the user's
 * input goes to it, watched for the detach keys (docker's ctrl-p ctrl-q); with a terminal (-t) the
 * user's terminal is put in raw mode (restored whatever happens) and its size is sent at once and on
 * every SIGWINCH. The attach ends with the container's exit code (the monitor's exit frame), or on
 * detach (the container keeps running), or when the monitor vanished (the code reconcile records).
 */
import { createConnection, type Socket } from 'node:net';
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { EngineRoots } from '../state/paths.js';
import { fail, messageOf } from '../util/errors.js';
import { containerStore, isActive } from './reconcile.js';
import { freshRecord } from './list.js';
import { startContainer } from './start.js';
import { waitContainer } from './wait.js';
import { killContainer } from './kill.js';
import { processStartTime } from '../state/proc.js';
import { rawTerminalOutput } from '../sys/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  attachSocketPath, readAttachConfig, parseDetachKeys, DetachMatcher, FrameReader, frame, resizeFrame,
  FRAME_STDIN, FRAME_STDOUT, FRAME_STDERR, FRAME_EXIT, FRAME_CLOSE_STDIN,
} from './attach-io.js';

export interface AttachStreams {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; getWindowSize?: () => [number, number] };
  stderr: Writable;
}

export interface AttachOptions {
  /** --no-stdin (and `start -a` without -i): do not forward input even if the container has stdin open. */
  noStdin?: boolean;
  /** --detach-keys, docker's format; default ctrl-p,ctrl-q. */
  detachKeys?: string;
  /** start -a: start the container first, connected before its command runs, so no output is missed. */
  start?: boolean;
  /** Ends the attach; the container keeps running. */
  signal?: AbortSignal;
  /**
   * docker's --sig-proxy (the CLI's default): without a terminal, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
   * SIGUSR1 and SIGUSR2 sent to this process are sent on to the container (tspod kill). With a
   * terminal, or without the proxy, SIGINT (Ctrl-C) detaches when `interruptDetaches` is set.
   */
  sigProxy?: boolean;
  interruptDetaches?: boolean;
  streams?: AttachStreams;
}

export interface AttachResult {
  /** The container's exit code; undefined when detached. */
  exitCode?: number;
  detached: boolean;
}

const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

export async function attachContainer(roots: EngineRoots, ref: string, opts: AttachOptions = {}): Promise<AttachResult> {
  const streams = opts.streams ?? (process as unknown as AttachStreams);
  const keys = parseDetachKeys(opts.detachKeys ?? DEFAULT_DETACH_KEYS);
  const containers = containerStore(roots);
  const rec = await containers.find(ref);
  const dir = containers.containerDir(rec.id);
  const cfg = await readAttachConfig(dir);
  const input = cfg.stdin && !opts.noStdin;
  const ttyCheck = () => {
    if (cfg.tty && input && !streams.stdin.isTTY) throw fail('EINVAL', `attach ${ref}: the input device is not a TTY (the container has a terminal; use --no-stdin)`);
  };

  // From here until the session's own handlers are in place, a signal is held (its default action would
  // kill this CLI while the monitor already counts it as a client) and handed to the session after.
  const held: NodeJS.Signals[] = [];
  const holders = PROXIED.map((sig) => [sig, () => { held.push(sig); }] as const);
  for (const [sig, h] of holders) process.on(sig, h);
  const release = () => {
    for (const [sig, h] of holders) process.off(sig, h);
    // to the session's handler, or, with none for it (a terminal without --sig-proxy), the default action
    for (const sig of held.splice(0)) {
      if (process.listenerCount(sig) > 0) process.emit(sig, sig);
      else process.kill(process.pid, sig);
    }
  };
  try {
    return await attachConnected();
  } finally {
    release();
  }

  async function attachConnected(): Promise<AttachResult> {
    let sock: Socket | undefined;
    if (opts.start) {
      ttyCheck();
      await startContainer(roots, rec.id, { beforeGo: async () => { sock = await connect(dir); } }).catch((err) => {
        sock?.destroy();
        throw err;
      });
    }
    if (!sock) {
      const now = await freshRecord(containers, (await containers.get(rec.id)) ?? rec);
      if (now.state === 'paused') throw fail('ESTATE', `cannot attach to container ${ref}: it is paused (unpause it first)`);
      if (!isActive(now)) throw fail('ESTATE', `cannot attach to container ${ref}: it is not running (start it first)`);
      ttyCheck();
      try {
        sock = await connect(dir);
      } catch (err) {
        const again = await freshRecord(containers, (await containers.get(rec.id)) ?? rec);
        if (!isActive(again)) throw fail('ESTATE', `cannot attach to container ${ref}: it is not running (start it first)`);
        throw fail('ESTATE', `cannot attach to container ${ref}: its monitor does not answer on ${attachSocketPath(dir)}: ${messageOf(err)}`, err);
      }
    }
    const monitor = (await containers.get(rec.id)) ?? rec;
    const proxy = opts.sigProxy && !cfg.tty ? (sig: NodeJS.Signals) => { killContainer(roots, rec.id, sig).catch(() => {}); } : undefined;
    const attached = session(sock, streams, { tty: cfg.tty, input, stdinOnce: !!cfg.stdinOnce && !cfg.tty, keys, signal: opts.signal, proxy,
      interruptDetaches: !!opts.interruptDetaches });
    release(); // the session's handlers are in place
    return attached.then(async (r) => {
      if (r.detached || r.exitCode !== undefined) return r;
      // No exit frame. A monitor that still runs dropped us: we could not keep up with the output. (A killed
      // monitor's sockets close while it is still exiting: give it a moment to be gone.)
      const monitorLives = () => !!monitor.monitorPid && monitor.monitorStart !== undefined && processStartTime(monitor.monitorPid) === monitor.monitorStart;
      for (let i = 0; i < 50 && monitorLives(); i++) await sleep(20);
      if (monitorLives()) {
        throw fail('ESTATE', `attach ${ref}: the container's monitor dropped this client, which could not keep up with the output (the container keeps running)`);
      }
      // The monitor is gone (killed): the container went with it, reconcile says how.
      return { detached: false, exitCode: await waitContainer(roots, rec.id) };
    });
  }
}

/** Connects through /proc/self/fd/N/attach.sock: sun_path's 108 bytes never limit the data root's path. */
async function connect(dir: string): Promise<Socket> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return await new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ path: `/proc/self/fd/${fh.fd}/attach.sock` });
      s.once('connect', () => { s.off('error', reject); resolve(s); });
      s.once('error', reject);
    });
  } finally {
    await fh.close();
  }
}

const PROXIED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function session(sock: Socket, streams: AttachStreams, o: { tty: boolean; input: boolean; stdinOnce: boolean; keys: Buffer; signal?: AbortSignal;
  proxy?: (sig: NodeJS.Signals) => void; interruptDetaches: boolean }): Promise<AttachResult> {
  const { stdin, stdout, stderr } = streams;
  const raw = o.tty && o.input && !!stdin.isTTY && typeof stdin.setRawMode === 'function';
  const matcher = new DetachMatcher(o.keys);
  const reader = new FrameReader();
  const cleanups: (() => void)[] = [];
  return new Promise<AttachResult>((resolve) => {
    let exitCode: number | undefined;
    let finished = false;
    const finish = (r: AttachResult) => {
      if (finished) return;
      finished = true;
      for (const c of cleanups.reverse()) {
        try { c(); } catch { /* restoring is best effort */ }
      }
      sock.destroy();
      resolve(r);
    };
    sock.on('data', (chunk: Buffer) => reader.push(chunk, (type, payload) => {
      if (type === FRAME_STDOUT) stdout.write(payload);
      else if (type === FRAME_STDERR) stderr.write(payload);
      else if (type === FRAME_EXIT) exitCode = Number(payload.toString('ascii'));
    }));
    sock.on('error', () => {});
    // A reader of our output that went away (`tspod attach c | head -1`): let go, the container runs on.
    const onOutErr = () => finish({ detached: true });
    stdout.on('error', onOutErr);
    stderr.on('error', onOutErr);
    cleanups.push(() => { stdout.off('error', onOutErr); stderr.off('error', onOutErr); });
    sock.on('close', () => finish(exitCode === undefined ? { detached: false } : { detached: false, exitCode }));

    if (o.tty) {
      const sendSize = () => {
        const size = stdout.isTTY && stdout.getWindowSize ? stdout.getWindowSize() : undefined;
        if (size && size[0] > 0 && size[1] > 0) sock.write(resizeFrame(size[1], size[0]));
      };
      sendSize();
      process.on('SIGWINCH', sendSize);
      cleanups.push(() => process.off('SIGWINCH', sendSize));
    }
    if (o.input) {
      if (raw) {
        stdin.setRawMode!(true);
        if (stdin === process.stdin) rawTerminalOutput(0);
        cleanups.push(() => stdin.setRawMode!(false));
      }
      const onData = (chunk: Buffer | string) => {
        const { forward, detach } = matcher.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
        if (forward.length) sock.write(frame(FRAME_STDIN, forward));
        if (detach) finish({ detached: true });
      };
      // End of the user's input: the container's stdin stays open (docker's attach to a run -d -i container),
      // or is closed too for a container made with create -i (docker's StdinOnce).
      const onEnd = () => { if (o.stdinOnce && !finished) sock.write(frame(FRAME_CLOSE_STDIN, Buffer.alloc(0))); };
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      stdin.on('error', () => {});
      cleanups.push(() => { stdin.off('data', onData); stdin.off('end', onEnd); stdin.pause(); });
    }
    if (o.proxy) {
      for (const sig of PROXIED) {
        const h = () => o.proxy!(sig);
        process.on(sig, h);
        cleanups.push(() => process.off(sig, h));
      }
    } else if (o.interruptDetaches) {
      const onInt = () => finish({ detached: true });
      process.on('SIGINT', onInt);
      cleanups.push(() => process.off('SIGINT', onInt));
    }
    if (o.signal) {
      const onAbort = () => finish({ detached: true });
      if (o.signal.aborted) onAbort();
      o.signal.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => o.signal!.removeEventListener('abort', onAbort));
    }
  });
}
