import { defineConfig } from 'vitest/config';

// Unit tests need no servers; integration tests run against the real local stack,
// which tests/setup/stack.ts provisions, starts and stops.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 600_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          globalSetup: ['tests/setup/stack.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
