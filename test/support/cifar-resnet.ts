/** The ResNet-20 fixture with CIFAR-10 through the API: data_batch_1 to decompose, the first test images to score. */
import path from 'node:path';
import type { Server } from 'node:http';
import request from 'supertest';
import { cifarHead } from './datasets';
import { CIFAR_DIR, CIFAR_PREPROCESSING, RESNET_DIR } from './fixtures';

export interface CifarResnet {
  /** data_batch_1, with its class names. */
  readonly train: { id: string; classNames: string[] };
  /** The first `testImages` images of test_batch. */
  readonly test: { id: string };
  /** ResNet-20 (model.h5), named with the dataset's class names. */
  readonly model: { id: string };
}

export async function uploadCifarResnet(server: Server, testImages: number): Promise<CifarResnet> {
  const train = await request(server)
    .post('/datasets')
    .attach('file', path.join(CIFAR_DIR, 'data_batch_1.bin'))
    .attach('file', path.join(CIFAR_DIR, 'batches.meta.txt'))
    .expect(201);
  const test = await request(server)
    .post('/datasets')
    .field('format', 'cifar-bin')
    .attach('file', cifarHead('test_batch.bin', testImages), 'test_head.bin')
    .attach('file', path.join(CIFAR_DIR, 'batches.meta.txt'))
    .expect(201);
  const model = await request(server)
    .post('/models')
    .field('preprocessing', JSON.stringify(CIFAR_PREPROCESSING))
    .field('classNames', JSON.stringify(train.body.classNames))
    .attach('file', path.join(RESNET_DIR, 'model.h5'))
    .expect(201);
  return { train: train.body, test: test.body, model: model.body };
}
