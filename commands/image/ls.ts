import Images from '../images.js';

/** `tspod image ls`: the same as `tspod images`. */
export default class ImageLs extends Images {
  static override description = 'list images';
  static override aliases = ['image:list'];
}
