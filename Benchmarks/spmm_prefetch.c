// SpMM prefetch distance on Gowalla: the kernel of Sources/AffinityKernels/sparse.c with AFFINITY_PREFETCH_AHEAD
// set to A, two threads (rows split in halves), best and mean of 40 products of the normalised adjacency by X [nodes, 64].
// Build: for A in 8 16 32 64; do sed "s/#define AFFINITY_PREFETCH_AHEAD 16/#define AFFINITY_PREFETCH_AHEAD $A/" Sources/AffinityKernels/sparse.c > /tmp/sparse_$A.c;
//   clang -O2 -ISources/AffinityKernels/include -ISources/AffinityKernels Benchmarks/spmm_prefetch.c /tmp/sparse_$A.c -lpthread -lm -o /tmp/spmm_prefetch_$A; done
// Run: /tmp/spmm_prefetch_$A   (reads ../shared/data/gowalla/train.txt from the project root)
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <pthread.h>
void affinity_spmm_rows_ex(const int64_t *row_start, const int32_t *col, const float *values, const float *x, int32_t d, float *y, int32_t row_begin, int32_t row_end, float beta, const uint8_t *mask, const float *addend, float *sum);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int64_t *rs; int32_t *ci; float *vals, *X, *Y; int N;
typedef struct {int b,e;} R;
void *work(void *a){R*r=a; affinity_spmm_rows_ex(rs,ci,vals,X,64,Y,r->b,r->e,0,0,0,0); return 0;}
int main(){
  FILE*f=fopen("../shared/data/gowalla/train.txt","r"); static char line[1<<20];
  int cap=2000000,n=0; int32_t *u=malloc(cap*4),*it=malloc(cap*4); int nu=0,ni=0;
  while(fgets(line,sizeof line,f)){char*p=line;int uid=strtol(p,&p,10);while(1){while(*p==' ')p++; if(*p<'0'||*p>'9')break; int i=strtol(p,&p,10); u[n]=uid; it[n]=i; n++; if(uid+1>nu)nu=uid+1; if(i+1>ni)ni=i+1;}}
  N=nu+ni; int *deg=calloc(N,4); for(int k=0;k<n;k++){deg[u[k]]++;deg[nu+it[k]]++;}
  rs=calloc(N+1,8); for(int v=0;v<N;v++) rs[v+1]=rs[v]+deg[v];
  int64_t *nx=malloc(N*8); memcpy(nx,rs,N*8); ci=malloc(2*n*4); vals=malloc(2*n*4);
  for(int k=0;k<n;k++){int a=u[k],b=nu+it[k]; float w=1/sqrtf((float)deg[a]*deg[b]); ci[nx[a]]=b; vals[nx[a]++]=w; ci[nx[b]]=a; vals[nx[b]++]=w;}
  X=malloc((size_t)N*64*4); Y=malloc((size_t)N*64*4); for(size_t k=0;k<(size_t)N*64;k++) X[k]=(k%97)*0.01f;
  double best=1e9, tot=0; int reps=40;
  for(int r=0;r<reps+3;r++){ double t0=now(); pthread_t th; R a={0,N/2},b={N/2,N}; pthread_create(&th,0,work,&a); work(&b); pthread_join(th,0); double t=now()-t0; if(r>=3){ if(t<best)best=t; tot+=t;} }
  printf("nodes %d nnz %ld best %.3f ms mean %.3f ms\n", N, rs[N], best*1e3, tot/reps*1e3);
}
