/** Jest only transpiles (isolatedModules); `tsc --noEmit` in `npm test` does the type-checking once. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { isolatedModules: true, diagnostics: false }],
  },
  setupFilesAfterEnv: ['<rootDir>/setup.js'],
  moduleFileExtensions: ['ts', 'js', 'json'],
};
