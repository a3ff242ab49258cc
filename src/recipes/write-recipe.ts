/**
 * The resolved recipe as it is saved with a run: RUN_DIR/recipe.yaml (loadable again with
 * `--recipe RUN_DIR/recipe.yaml`; where it came from in its header comment) and
 * RUN_DIR/recipe.json (the same recipe as JSON), both written atomically. `recipeExtra` is what
 * the trainer stores in trainer-config.json and in every checkpoint.
 */
import * as path from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import type { ResolvedRecipe } from './load-recipe.js';

export const RECIPE_YAML = 'recipe.yaml';
export const RECIPE_JSON = 'recipe.json';

export interface RecipeSource {
  file: string;
  chain: string[];
  variant: string;
  sets: string[];
}

export function recipeSource(r: ResolvedRecipe): RecipeSource {
  return { file: r.file, chain: r.chain, variant: r.variant, sets: r.sets };
}

/** The plain-JSON record saved with checkpoints. */
export function recipeExtra(r: ResolvedRecipe, more: Record<string, unknown> = {}): Record<string, unknown> {
  return { recipe: r.recipe, recipe_source: recipeSource(r), ...more };
}

export function recipeYamlText(r: ResolvedRecipe): string {
  const header = [
    `# Resolved moe-tune recipe (${r.variant} variant) from ${r.file}`,
    ...(r.chain.length > 1 ? [`# extends: ${r.chain.slice(0, -1).join(' <- ')}`] : []),
    ...(r.sets.length > 0 ? [`# --set ${r.sets.join(' --set ')}`] : []),
    '# Every default is filled in; run it again with --recipe THIS_FILE.',
  ];
  return `${header.join('\n')}\n${stringify(r.recipe, { lineWidth: 0 })}`;
}

/** Writes recipe.yaml and recipe.json into a directory; returns their paths. */
export function writeResolvedRecipe(dir: string, r: ResolvedRecipe): { yaml: string; json: string } {
  const yaml = path.join(dir, RECIPE_YAML);
  const json = path.join(dir, RECIPE_JSON);
  writeFileAtomic(yaml, recipeYamlText(r));
  writeJsonAtomic(json, r.recipe);
  return { yaml, json };
}
