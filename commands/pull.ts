import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { pull } from '../src/index.js';
import { shortId } from '../src/cli/format.js';

export default class Pull extends TspodCommand {
  static override description = 'pull an image from a registry';
  static override examples = ['<%= config.bin %> pull alpine:3.19', '<%= config.bin %> pull --platform linux/arm64 alpine:3.19'];
  static override args = { image: Args.string({ required: true, description: 'image reference (name[:tag] or name@digest)' }) };
  static override flags = {
    platform: Flags.string({ description: 'pull the image for this platform (os/arch[/variant]) instead of the host\'s' }),
    quiet: Flags.boolean({ char: 'q', description: 'print only the image reference' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pull);
    const out = (s: string) => { if (!flags.quiet) process.stdout.write(s + '\n'); };
    const result = await pull(args.image, {
      roots: this.roots(flags),
      platform: flags.platform,
      onEvent: (e) => {
        if (e.type === 'resolved') out(`Pulling ${e.reference}`);
        else if (e.status === 'exists') out(`${shortId(e.digest)}: Already exists`);
        else if (e.status === 'done') out(`${shortId(e.digest)}: Pull complete`);
      },
    });
    out(`Digest: ${result.resolvedDigest}`);
    out(result.layersFetched > 0 ? `Status: Downloaded newer image for ${result.familiarName}` : `Status: Image is up to date for ${result.familiarName}`);
    process.stdout.write(result.name + '\n');
  }
}
