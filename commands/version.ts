import { TspodCommand } from '../src/cli/base.js';

export default class Version extends TspodCommand {
  static override description = 'print the tspod version';
  async run(): Promise<void> {
    this.log(this.config.version);
  }
}
