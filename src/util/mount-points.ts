/**
 * The files tspod bind-mounts into every container (src/runtime/spec.ts). The launcher creates an empty
 * file for each one the image lacks, in the container's upper dir: a mount point, not a change of the
 * user's, so diff and commit leave it out (docker keeps these in an "init" layer below the container's).
 * Relative to the container's root.
 */
export const MOUNT_POINT_FILES: readonly string[] = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf'];
