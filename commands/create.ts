import Run from './run.js';

export default class Create extends Run {
  static override description = 'create a new container (started later with tspod start)';
  static override usage = 'create [FLAGS] IMAGE [COMMAND] [ARG...]';
  static override examples = ['<%= config.bin %> create --name web busybox httpd -f -p 8080'];
  static override createOnly = true;
}
