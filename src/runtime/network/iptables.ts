/**
 * The firewall through iptables (iptables-nft), for hosts without the `nft` program, or with
 * TSPOD_FIREWALL=iptables. Same policy as nft.ts, in tspod's own chains:
 *   nat    TSPOD-POSTROUTING (from POSTROUTING)   masquerade leaving a tspod subnet; loopback source out of a bridge
 *          TSPOD-PORTS (from PREROUTING and OUTPUT for local destinations)   one DNAT per published port
 *   filter TSPOD-FORWARD (first rule of FORWARD)  a bridge's traffic out, replies and DNAT in, the rest to it dropped;
 *          ACCEPT there is final for the FORWARD chain, so a FORWARD policy of DROP does not stop it
 * Rules carry the comment "tspod:<bridge>" or "tspod:<container id>". Each change is one
 * iptables call per rule (-C before -A/-I keeps them idempotent); chains and jumps are removed with
 * the last bridge.
 */
import { execTool } from './exec.js';
import { fail } from '../../util/errors.js';
import type { PortMapping } from './store.js';

async function ipt(args: string[], okIfMissing = false): Promise<boolean> {
  const r = await execTool('iptables', ['-w', ...args]);
  if (r.code === 0) return true;
  if (okIfMissing) return false;
  throw fail('ESYS', `iptables ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

/** Appends (or with `insert`, inserts first) a rule unless it is there. */
async function ensureRule(table: string, chain: string, spec: string[], insert = false): Promise<void> {
  if (await ipt(['-t', table, '-C', chain, ...spec], true)) return;
  await ipt(['-t', table, insert ? '-I' : '-A', chain, ...(insert ? ['1'] : []), ...spec]);
}

async function ensureChain(table: string, chain: string): Promise<void> {
  await ipt(['-t', table, '-N', chain], true);
}

function portSpec(p: PortMapping, ip: string, containerId: string): string[] {
  return [...(p.hostIp === '0.0.0.0' ? [] : ['-d', `${p.hostIp}/32`]), '-p', p.protocol, '-m', p.protocol, '--dport', String(p.hostPort),
    '-m', 'comment', '--comment', `tspod:${containerId}`, '-j', 'DNAT', '--to-destination', `${ip}:${p.containerPort}`];
}

function bridgeRules(bridge: string, subnet: string): [string, string, string[]][] {
  const c = ['-m', 'comment', '--comment', `tspod:${bridge}`];
  return [
    ['nat', 'TSPOD-POSTROUTING', ['-s', subnet, '!', '-d', subnet, ...c, '-j', 'MASQUERADE']],
    ['nat', 'TSPOD-POSTROUTING', ['-s', '127.0.0.0/8', '-o', bridge, ...c, '-j', 'MASQUERADE']],
    ['filter', 'TSPOD-FORWARD', ['-i', bridge, ...c, '-j', 'ACCEPT']],
    ['filter', 'TSPOD-FORWARD', ['-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', ...c, '-j', 'ACCEPT']],
    ['filter', 'TSPOD-FORWARD', ['-o', bridge, '-m', 'conntrack', '--ctstate', 'DNAT', ...c, '-j', 'ACCEPT']],
    ['filter', 'TSPOD-FORWARD', ['-o', bridge, ...c, '-j', 'DROP']],
  ];
}

const JUMPS: [string, string, string[]][] = [
  ['nat', 'POSTROUTING', ['-j', 'TSPOD-POSTROUTING']],
  ['nat', 'PREROUTING', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'TSPOD-PORTS']],
  ['nat', 'OUTPUT', ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'TSPOD-PORTS']],
  ['filter', 'FORWARD', ['-j', 'TSPOD-FORWARD']],
];

export async function iptInstall(bridge: string, subnet: string, ports: { p: PortMapping; ip: string; containerId: string }[]): Promise<void> {
  for (const [t, ch] of [['nat', 'TSPOD-POSTROUTING'], ['nat', 'TSPOD-PORTS'], ['filter', 'TSPOD-FORWARD']] as const) await ensureChain(t, ch);
  for (const [t, ch, spec] of JUMPS) await ensureRule(t, ch, spec, true);
  for (const [t, ch, spec] of bridgeRules(bridge, subnet)) await ensureRule(t, ch, spec);
  for (const x of ports) await ensureRule('nat', 'TSPOD-PORTS', portSpec(x.p, x.ip, x.containerId));
}

export async function iptRemovePorts(ports: PortMapping[], ip: string, containerId: string): Promise<void> {
  for (const p of ports) await ipt(['-t', 'nat', '-D', 'TSPOD-PORTS', ...portSpec(p, ip, containerId)], true);
}

export async function iptRemoveNetwork(bridge: string, subnet: string, last: boolean): Promise<void> {
  for (const [t, ch, spec] of bridgeRules(bridge, subnet)) await ipt(['-t', t, '-D', ch, ...spec], true);
  if (!last) return;
  for (const [t, ch, spec] of JUMPS) await ipt(['-t', t, '-D', ch, ...spec], true);
  for (const [t, ch] of [['nat', 'TSPOD-POSTROUTING'], ['nat', 'TSPOD-PORTS'], ['filter', 'TSPOD-FORWARD']] as const) {
    await ipt(['-t', t, '-F', ch], true);
    await ipt(['-t', t, '-X', ch], true);
  }
}
