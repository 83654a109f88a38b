/**
 * `npm run openapi`: regenerates openapi.yaml and, from it, the client types of the generated-client
 * test (test/client/openapi.ts). A test fails when either is out of date.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CLIENT_TYPES, renderClientTypes, renderOpenApiYaml } from './openapi-document';

renderOpenApiYaml()
  .then((yaml) => {
    const file = path.resolve(__dirname, '..', 'openapi.yaml');
    fs.writeFileSync(file, yaml);
    console.log(`wrote ${file}`);
    fs.writeFileSync(CLIENT_TYPES, renderClientTypes(file));
    console.log(`wrote ${CLIENT_TYPES}`);
    process.exit(0);
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
