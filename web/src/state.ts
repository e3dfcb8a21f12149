import { Model } from './model';

/** The one model of the page. */
export const model = new Model();
