/**
 * Asks the API server whether the current identity may do something, with
 * SelfSubjectAccessReview: the authorizer's own answer, whatever its mode.
 */
import pLimit from 'p-limit'
import type {KubeApi} from './api.js'

export interface AccessQuestion {
  verb: string
  group: string
  resource: string
  subresource?: string
  namespace?: string
  name?: string
}

export interface AccessAnswer extends AccessQuestion {
  allowed: boolean
  reason?: string
}

/** Asks one question. */
export async function canI(api: KubeApi, question: AccessQuestion): Promise<AccessAnswer> {
  const review = await api.post<{status?: {allowed?: boolean; reason?: string}}>(
    '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: {resourceAttributes: {
        verb: question.verb,
        group: question.group,
        resource: question.resource,
        subresource: question.subresource,
        namespace: question.namespace,
        name: question.name,
      }},
    },
  )
  return {...question, allowed: review.status?.allowed === true, reason: review.status?.reason}
}

/** Asks many questions with bounded concurrency; answers keep the questions' order. */
export async function canIAll(api: KubeApi, questions: AccessQuestion[], concurrency = 8): Promise<AccessAnswer[]> {
  const limit = pLimit(concurrency)
  return Promise.all(questions.map((q) => limit(() => canI(api, q))))
}
