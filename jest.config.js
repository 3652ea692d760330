/**
 * Jest only transpiles: tsconfig's `isolatedModules` makes ts-jest transpile file by file, and
 * `tsc --noEmit` in `npm test` does the type-checking once.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  setupFilesAfterEnv: ['<rootDir>/setup.js'],
  moduleFileExtensions: ['ts', 'js', 'json'],
};
