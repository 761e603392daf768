import { defineConfig } from 'vitest/config';

// Two projects: pure unit tests run in parallel worker threads; tests that touch the real
// kernel (mounts, namespaces, cgroups) or the fixture registry run one file at a time in forks,
// because they share global resources (the mount table, the cgroup tree, loopback ports).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          pool: 'threads',
        },
      },
      {
        test: {
          name: 'system',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
