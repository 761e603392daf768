/** history: the image config's history, newest first, with each layer's size (docker history). */
import type { Store } from '../../store/index.js';
import type { Digest } from '../oci/types.js';
import { findImage } from './local.js';

export interface HistoryRow {
  /** The image ID for the top row, "<missing>" below it (as docker shows for pulled images). */
  id: string;
  created?: string;
  createdBy: string;
  /** Compressed size of the layer this step made (0 for an empty_layer step). */
  size: number;
  comment: string;
  emptyLayer: boolean;
  layerDigest?: Digest;
}

export async function imageHistory(store: Store, text: string): Promise<HistoryRow[]> {
  const img = await findImage(store, text);
  const layers = img.manifest.layers;
  const history = img.config.history ?? [];
  const rows: HistoryRow[] = [];
  let li = 0;
  for (const h of history) {
    const empty = h.empty_layer === true;
    const layer = empty ? undefined : layers[li++];
    rows.push({
      id: '<missing>',
      created: h.created,
      createdBy: h.created_by ?? '',
      size: layer?.size ?? 0,
      comment: h.comment ?? '',
      emptyLayer: empty,
      ...(layer ? { layerDigest: layer.digest } : {}),
    });
  }
  // layers the history does not account for (images built without history)
  for (; li < layers.length; li++) {
    rows.push({ id: '<missing>', createdBy: '', size: layers[li]!.size, comment: '', emptyLayer: false, layerDigest: layers[li]!.digest });
  }
  rows.reverse();
  if (rows.length > 0) rows[0]!.id = img.imageId;
  return rows;
}
