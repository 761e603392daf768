import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { push } from '../src/index.js';
import { shortId } from '../src/cli/format.js';

export default class Push extends TspodCommand {
  static override description = 'push an image to a registry';
  static override examples = ['<%= config.bin %> push registry.local:5000/team/web:v2'];
  static override args = {
    image: Args.string({ required: true, description: 'local image (name[:tag])' }),
    destination: Args.string({ description: 'push to this reference instead of the image\'s own name' }),
  };
  static override flags = {
    quiet: Flags.boolean({ char: 'q', description: 'print only the pushed digest' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Push);
    const out = (s: string) => { if (!flags.quiet) process.stdout.write(s + '\n'); };
    const words = { exists: 'Layer already exists', mounted: 'Mounted from another repository', uploaded: 'Pushed' } as const;
    const r = await push(args.image, {
      roots: this.roots(flags),
      destination: args.destination,
      onEvent: (e) => {
        if (e.outcome === 'uploading') return;
        out(`${shortId(e.digest)}: ${words[e.outcome]}`);
      },
    });
    out(`${r.tag}: digest: ${r.manifestDigest} size: ${r.size}`);
    if (flags.quiet) process.stdout.write(r.manifestDigest + '\n');
  }
}
