import { Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { humanSize, table } from '../../src/cli/format.js';
import { diskUsage } from '../../src/index.js';

export default class SystemDf extends TspodCommand {
  static override description = 'show the space used by images (blobs and unpacked layers) and containers';
  static override flags = {
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SystemDf);
    const u = await diskUsage({ roots: this.roots(flags) });
    if (flags.json) {
      process.stdout.write(JSON.stringify(u, null, 2) + '\n');
      return;
    }
    const pct = (part: number, whole: number) => `${humanSize(part)} (${whole > 0 ? Math.round((part / whole) * 100) : 0}%)`;
    const imageBytes = u.blobs.bytes + u.layers.bytes + u.ingest.bytes;
    const reclaim = u.reclaimable.blobs + u.reclaimable.layers + u.reclaimable.ingest;
    process.stdout.write(table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], [
      ['Images', String(u.images), String(u.activeImages), humanSize(imageBytes), pct(reclaim, imageBytes)],
      ['Containers', String(u.containers.total), String(u.containers.active), humanSize(u.snapshots.bytes), pct(u.containers.reclaimable, u.snapshots.bytes)],
      ['  blobs', String(u.blobs.count), '', humanSize(u.blobs.bytes), pct(u.reclaimable.blobs, u.blobs.bytes)],
      ['  layers', String(u.layers.count), '', humanSize(u.layers.bytes), pct(u.reclaimable.layers, u.layers.bytes)],
      ['  partial downloads', String(u.ingest.count), '', humanSize(u.ingest.bytes), pct(u.reclaimable.ingest, u.ingest.bytes)],
    ]));
  }
}
