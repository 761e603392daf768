/**
 * cgroups for tspod: `detectCgroups()` reads the mount table and returns the v1 driver (legacy and
 * hybrid hosts) or the v2 driver (unified hosts). Groups nest under the caller's own cgroup in every
 * hierarchy, as `tspod/<id>`, unless a parent is given (absolute: from the hierarchy root; relative:
 * from the caller's cgroup). On v2, a group whose limits need controllers that a busy caller's cgroup
 * cannot delegate goes to `/tspod/<id>` at the top instead (see V2Driver.create). Record `Cgroup.paths`
 * with the container: a later command may run in
 * another cgroup and reopens the group with `open(id, { paths })`.
 *
 * Unit tests: `new FakeCgroupFs(...)` from './fake.js' is a temp-dir cgroupfs with the kernel's rules;
 * pass it as `io` to `detectCgroups`, `V1Driver` or `V2Driver`.
 */
export type { Cgroup, CgroupDriver, CgroupIo, CgroupLimits, CgroupOpenOptions, CgroupStats, CgroupView } from './types.js';
export { detectCgroups, prewarmAttach, type DetectOptions } from './detect.js';
export { parseBytes, parseCpus, sharesToWeight } from './parse.js';
export { realCgroupIo } from './io.js';
export { V1Driver, type V1Hierarchy } from './v1.js';
export { V2Driver } from './v2.js';
