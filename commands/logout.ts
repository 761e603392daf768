import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { logout } from '../src/index.js';

export default class Logout extends TspodCommand {
  static override description = 'log out from a registry (removes the stored credentials)';
  static override args = { registry: Args.string({ required: false, description: 'registry host[:port] (default docker.io)' }) };

  async run(): Promise<void> {
    const { args } = await this.parse(Logout);
    const r = await logout(args.registry);
    // docker prints the same line whether or not there was a login to remove
    process.stdout.write(r.removed ? `Removing login credentials for ${r.registry}\n` : `Not logged in to ${r.registry}\n`);
  }
}
