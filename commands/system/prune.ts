import { Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { confirm } from '../../src/cli/confirm.js';
import { humanSize } from '../../src/cli/format.js';
import { pruneContainers, pruneImages } from '../../src/index.js';

/**
 * docker system prune. Two owners: stopped containers (issue 7, section A) go first, so that their
 * snapshots stop being GC roots; then images, layers, blobs and partial downloads (issue 4, section B).
 */
export default class SystemPrune extends TspodCommand {
  static override description = 'remove stopped containers and unused image data';
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'remove all images without a container, not only unreferenced data' }),
    force: Flags.boolean({ char: 'f', description: 'do not prompt for confirmation' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(SystemPrune);
    const roots = this.roots(flags);
    if (!flags.force) {
      const images = flags.all ? 'all images without at least one container associated to them' : 'all dangling images';
      if (!(await confirm(`WARNING! This will remove:\n  - all stopped containers\n  - ${images}\n  - all partial downloads`))) return;
    }
    let reclaimed = 0;

    // ---- A. containers (issue 7): stopped containers, their snapshots, cgroups and network ----
    const gone = await pruneContainers({ roots });
    if (gone.deleted.length) process.stdout.write(`Deleted Containers:\n${gone.deleted.join('\n')}\n\n`);
    reclaimed += gone.reclaimed;

    // ---- B. images, layers, blobs, partial downloads (issue 4) ----
    const res = await pruneImages({ roots, all: flags.all });
    if (res.untagged.length || res.deleted.length) {
      process.stdout.write('Deleted Images:\n');
      for (const n of res.untagged) process.stdout.write(`untagged: ${n}\n`);
      for (const d of res.deleted) process.stdout.write(`deleted: ${d}\n`);
      process.stdout.write('\n');
    }
    reclaimed += res.reclaimed;
    process.stdout.write(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
  }
}
