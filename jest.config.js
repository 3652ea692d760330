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
  // The package's own names, as users import them (tsconfig.json "paths" says the same to tsc).
  moduleNameMapper: {
    '^twinwall$': '<rootDir>/index.ts',
    '^twinwall/core$': '<rootDir>/lib/index.ts',
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
