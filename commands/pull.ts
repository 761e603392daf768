import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { PullProgress } from '../src/cli/progress.js';
import { pull } from '../src/index.js';

export default class Pull extends TspodCommand {
  static override description = 'pull an image from a registry';
  static override examples = ['<%= config.bin %> pull alpine:3.19', '<%= config.bin %> pull --platform linux/arm64 alpine:3.19'];
  static override args = { image: Args.string({ required: true, description: 'image reference (name[:tag] or name@digest)' }) };
  static override flags = {
    platform: Flags.string({ description: 'pull the image for this platform (os/arch[/variant]) instead of the host\'s' }),
    quiet: Flags.boolean({ char: 'q', description: 'print only the image reference' }),
    'max-concurrent-downloads': Flags.integer({ description: 'layers downloaded at once', default: 3, min: 1, max: 32 }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pull);
    const progress = flags.quiet ? undefined : new PullProgress({ out: process.stdout, tty: process.stdout.isTTY === true });
    const out = (s: string) => { if (!flags.quiet) process.stdout.write(s + '\n'); };
    const result = await pull(args.image, {
      roots: this.roots(flags),
      platform: flags.platform,
      concurrency: flags['max-concurrent-downloads'],
      onEvent: (e) => progress?.onEvent(e),
    });
    progress?.finish();
    out(`Digest: ${result.resolvedDigest}`);
    out(result.layersFetched > 0 ? `Status: Downloaded newer image for ${result.familiarName}` : `Status: Image is up to date for ${result.familiarName}`);
    process.stdout.write(result.name + '\n');
  }
}
