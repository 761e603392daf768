import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { containerStats, listContainers, type ContainerStats } from '../src/index.js';
import { humanSize, table } from '../src/cli/format.js';

export default class Stats extends TspodCommand {
  static override description = 'display resource usage statistics of containers (CPU, memory, pids, network, block I/O)';
  static override strict = false;
  static override args = { container: Args.string({ required: false, description: 'container name or ID (prefix); default all running' }) };
  static override flags = {
    'no-stream': Flags.boolean({ description: 'print one sample and exit' }),
    format: Flags.string({ description: '"json": one JSON object per line' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Stats);
    const roots = this.roots(flags);
    const refs = (argv as string[]).length ? (argv as string[]) : (await listContainers(roots)).map((c) => c.id);
    for (;;) {
      const all: ContainerStats[] = [];
      for (const r of refs) all.push(await containerStats(roots, r));
      if (flags.format === 'json') {
        for (const s of all) process.stdout.write(JSON.stringify(s) + '\n');
      } else {
        process.stdout.write(table(['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'NET I/O', 'BLOCK I/O', 'PIDS'], all.map((s) => [
          s.id.slice(0, 12), s.name, `${s.cpuPercent.toFixed(2)}%`,
          `${humanSize(s.memoryBytes)} / ${s.memoryLimitBytes !== undefined ? humanSize(s.memoryLimitBytes) : 'unlimited'}`,
          `${humanSize(s.netRxBytes)} / ${humanSize(s.netTxBytes)}`, `${humanSize(s.blockReadBytes)} / ${humanSize(s.blockWriteBytes)}`, String(s.pids)])));
      }
      if (flags['no-stream']) return;
    }
  }
}
