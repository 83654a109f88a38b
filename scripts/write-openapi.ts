/** `npm run openapi`: regenerates openapi.yaml (a test fails when it is out of date). */
import fs from 'node:fs';
import path from 'node:path';
import { renderOpenApiYaml } from './openapi-document';

renderOpenApiYaml()
  .then((yaml) => {
    const file = path.resolve(__dirname, '..', 'openapi.yaml');
    fs.writeFileSync(file, yaml);
    console.log(`wrote ${file}`);
    process.exit(0);
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
