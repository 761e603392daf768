import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { commit } from '../src/index.js';

export default class Commit extends TspodCommand {
  static override description = "create a new image from a container's changes";
  static override usage = 'commit [-m MSG] [-a AUTHOR] [-c INSTRUCTION]... [--pause=false] CONTAINER [REPOSITORY[:TAG]]';
  static override examples = [
    `<%= config.bin %> commit -m 'add curl' -c 'CMD ["sh"]' web1 registry.local:5000/team/web:v2`,
  ];
  static override args = {
    container: Args.string({ required: true, description: 'container name or ID' }),
    ref: Args.string({ description: 'name of the new image (default: localhost/<container name>:latest)' }),
  };
  static override flags = {
    message: Flags.string({ char: 'm', description: 'commit message' }),
    author: Flags.string({ char: 'a', description: 'author (e.g. "Jane <jane@example.com>")' }),
    change: Flags.string({ char: 'c', multiple: true, multipleNonGreedy: true, description: 'apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)' }),
    pause: Flags.boolean({ char: 'p', default: true, allowNo: true, description: 'pause a running container during the commit' }),
    quiet: Flags.boolean({ char: 'q', description: 'print only the image ID' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Commit);
    const r = await commit(args.container, args.ref, {
      roots: this.roots(flags), message: flags.message, author: flags.author, changes: flags.change, pause: flags.pause,
    });
    process.stdout.write(flags.quiet ? r.imageId + '\n' : `${r.name}\n${r.imageId}\n`);
  }
}
