import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { INSPECT_TYPES, inspectObject, type InspectType } from '../src/index.js';
import { fail } from '../src/util/errors.js';
import { printInspected } from '../src/cli/template.js';

export default class Inspect extends TspodCommand {
  static override description = 'display detailed information on containers, images, networks or volumes (JSON)';
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'container, image, network or volume name or ID (prefix)' }) };
  static override flags = {
    format: Flags.string({ char: 'f', description: 'a Go template for each object: "{{.State.Status}}", "{{json .Mounts}}"' }),
    type: Flags.string({ description: 'only this kind: container, image, network or volume (default: the first that has the name, in that order)' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Inspect);
    const type = flags.type;
    if (type !== undefined && !(INSPECT_TYPES as readonly string[]).includes(type)) {
      throw fail('EINVAL', `"${type}" is not a valid value for --type: want ${INSPECT_TYPES.join(', ')}`);
    }
    await printInspected(argv as string[], flags.format, async (ref) => (await inspectObject(ref, { roots: this.roots(flags), type: type as InspectType | undefined })).value);
  }
}
