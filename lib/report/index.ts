/** Review in pull requests: `twinwall report` and `twinwall diff`, from the artefacts alone. */
export * from './markdown';
export * from './host';
export * from './report';
export * from './mermaid';
export * from './diff';
export * from './render';
