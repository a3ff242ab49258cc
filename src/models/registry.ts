/** The registry of architectures lives in ./architectures (one file per family); re-exported here. */
export { ARCHITECTURES, resolveArchitecture, layoutOf, registerArchitecture } from './architectures/index.js';
export type { ArchitectureLayout } from './architectures/index.js';
