import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { dockerVolume, inspectVolume } from '../../src/index.js';
import { messageOf } from '../../src/util/errors.js';
import { inspectOutput, parseTemplate } from '../../src/cli/template.js';

export default class VolumeInspect extends TspodCommand {
  static override description = 'show volumes as JSON (docker volume inspect keys)';
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'volume name' }) };
  static override flags = {
    format: Flags.string({ char: 'f', description: 'a Go template for each volume: "{{.Mountpoint}}", "{{json .Labels}}"' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(VolumeInspect);
    const template = flags.format !== undefined ? parseTemplate(flags.format) : undefined;
    const out: unknown[] = [];
    let failed = false;
    for (const n of argv as string[]) {
      try {
        out.push(dockerVolume(await inspectVolume(n, { roots: this.roots(flags) })));
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    process.stdout.write(inspectOutput(out, template));
    if (failed) process.exitCode = 1;
  }
}
