/**
 * Who the API server thinks we are, and what it runs. SelfSubjectReview exists
 * from Kubernetes 1.26 (alpha) to 1.28 (GA); older servers get a clear unknown.
 */
import {ApiError, type KubeApi} from './api.js'

export interface Identity {
  /** The user name, or undefined when the server cannot say. */
  username?: string
  groups: string[]
  /** Which API answered, or why nobody did. */
  source: string
}

export interface ServerVersion {
  gitVersion: string
  major: string
  minor: string
  platform?: string
}

const REVIEW_VERSIONS = ['v1', 'v1beta1', 'v1alpha1']

/** Asks the server who the current credentials belong to. */
export async function whoAmI(api: KubeApi): Promise<Identity> {
  for (const version of REVIEW_VERSIONS) {
    try {
      const review = await api.post<{status?: {userInfo?: {username?: string; groups?: string[]}}}>(
        `/apis/authentication.k8s.io/${version}/selfsubjectreviews`,
        {apiVersion: `authentication.k8s.io/${version}`, kind: 'SelfSubjectReview'},
        {retries: 1},
      )
      const info = review.status?.userInfo ?? {}
      return {username: info.username, groups: info.groups ?? [], source: `authentication.k8s.io/${version} SelfSubjectReview`}
    } catch (err) {
      // 404: this version is not served; 403: reviews are not allowed for us.
      if (err instanceof ApiError && (err.statusCode === 404 || err.statusCode === 403)) continue
      throw err
    }
  }
  return {groups: [], source: 'unknown: the server has no SelfSubjectReview API (Kubernetes < 1.26)'}
}

/** The server's version, with a short deadline: it is the first request a command makes. */
export async function serverVersion(api: KubeApi, timeoutMs = 3000): Promise<ServerVersion> {
  return api.get<ServerVersion>('/version', {timeoutMs, retries: 0})
}
