import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { inspectContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';
import { parseTemplate } from '../src/cli/template.js';

export default class Inspect extends TspodCommand {
  static override description = 'display detailed information on one or more containers (JSON)';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    format: Flags.string({ char: 'f', description: 'a Go template for each container: "{{.State.Status}}", "{{json .Mounts}}"' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Inspect);
    const template = flags.format !== undefined ? parseTemplate(flags.format) : undefined;
    const out: unknown[] = [];
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        out.push(await inspectContainer(this.roots(flags), ref));
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (template) for (const c of out) process.stdout.write(template.render(c) + '\n');
    else process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    if (failed) process.exitCode = 1;
  }
}
