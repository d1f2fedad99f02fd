//! The `loyalty.v1.Reports` handlers: admit a `reporting` or `admin` key,
//! read the options into a [`Query`], make the report in a blocking task
//! (it scans every member on all cores), encode it. Conversions both ways
//! live in [`convert`], so that `tierd report --server` shows a report
//! received over gRPC exactly as one made from a data directory.

pub mod convert;

use tonic::{Request, Response, Status};

use super::{
    auth::Action,
    pb::{self, reports_server::Reports},
    service::LoyaltyApi,
    status::status_of,
};
use crate::{
    app::ProgramError,
    report::{Query, Report},
};

type Answer<T> = Result<Response<T>, Status>;

impl LoyaltyApi {
    /// Admits the caller, reads the queries its request asks for, and
    /// makes their reports in one scan off the async workers (it reads
    /// every member on all cores).
    async fn made<R>(
        &self,
        request: Request<R>,
        queries: impl FnOnce(R, chrono::NaiveDate) -> Result<Vec<Query>, ProgramError>,
    ) -> Result<Vec<Result<Report, ProgramError>>, Status> {
        let _admitted = self.admit(&request, Action::Report)?;
        let program = std::sync::Arc::clone(self.program());
        let queries = queries(request.into_inner(), program.today()).map_err(status_of)?;
        tokio::task::spawn_blocking(move || program.reports(queries))
            .await
            .map_err(|_| Status::internal("the report stopped unexpectedly"))?
            .map_err(status_of)
    }

    /// The one report a request asks for, encoded as the message `P`
    /// answers with.
    async fn report<R, P: convert::OfReport>(
        &self,
        request: Request<R>,
        query: impl FnOnce(R, chrono::NaiveDate) -> Result<Query, ProgramError>,
    ) -> Answer<P> {
        let made = self
            .made(request, |r, today| Ok(vec![query(r, today)?]))
            .await?;
        let report = made
            .into_iter()
            .next()
            .ok_or_else(|| Status::internal("the report asked for is missing"))?;
        message(report).map(Response::new)
    }

    /// [`LoyaltyApi::report`] as a stream of the messages `M` it is sent
    /// in (a report with its member list).
    async fn streamed<R, M>(
        &self,
        request: Request<R>,
        query: impl FnOnce(R, chrono::NaiveDate) -> Result<Query, ProgramError>,
    ) -> Answer<tonic::codegen::BoxStream<M>>
    where
        M: Send + 'static,
        Vec<M>: convert::OfReport,
    {
        let messages: Vec<M> = self.report(request, query).await?.into_inner();
        let stream = tokio_stream::iter(messages.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[tonic::async_trait]
impl Reports for LoyaltyApi {
    async fn tier_distribution(
        &self,
        request: Request<pb::AsOfRequest>,
    ) -> Answer<pb::DistributionReport> {
        self.report(request, convert::distribution_query).await
    }

    async fn tier_migration(
        &self,
        request: Request<pb::PeriodRequest>,
    ) -> Answer<pb::MigrationReport> {
        self.report(request, convert::migration_query).await
    }

    async fn value_ranks(
        &self,
        request: Request<pb::ValueRanksRequest>,
    ) -> Answer<pb::ValueRanksReport> {
        self.report(request, convert::value_ranks_query).await
    }

    async fn value_bands(&self, request: Request<pb::AsOfRequest>) -> Answer<pb::ValueBandsReport> {
        self.report(request, convert::value_bands_query).await
    }

    async fn rfm(&self, request: Request<pb::PeriodRequest>) -> Answer<pb::RfmReport> {
        self.report(request, convert::rfm_query).await
    }

    async fn points_liability(
        &self,
        request: Request<pb::LiabilityRequest>,
    ) -> Answer<pb::LiabilityReport> {
        self.report(request, |_, _| Ok(Query::Liability)).await
    }

    async fn segments(&self, request: Request<pb::PeriodRequest>) -> Answer<pb::SegmentsReport> {
        self.report(request, convert::segments_query).await
    }

    async fn groups(&self, request: Request<pb::GroupsRequest>) -> Answer<pb::GroupsReport> {
        self.report(request, convert::groups_query).await
    }

    async fn clusters(&self, request: Request<pb::ClustersRequest>) -> Answer<pb::ClustersReport> {
        self.report(request, convert::clusters_query).await
    }

    async fn rfm_members(
        &self,
        request: Request<pb::PeriodRequest>,
    ) -> Answer<tonic::codegen::BoxStream<pb::RfmMembersResponse>> {
        self.streamed(request, convert::rfm_members_query).await
    }

    async fn predict(&self, request: Request<pb::PredictRequest>) -> Answer<pb::PredictionReport> {
        self.report(request, convert::predict_query).await
    }

    async fn predict_members(
        &self,
        request: Request<pb::PredictRequest>,
    ) -> Answer<tonic::codegen::BoxStream<pb::PredictMembersResponse>> {
        self.streamed(request, convert::predict_members_query).await
    }

    async fn page(&self, request: Request<pb::PageRequest>) -> Answer<pb::PageReport> {
        let made = self.made(request, convert::page_queries).await?;
        page_report(made).map(Response::new)
    }
}

/// A report made, as the message `P` answers with; a report refused, as
/// its status.
fn message<P: convert::OfReport>(made: Result<Report, ProgramError>) -> Result<P, Status> {
    P::of_report(made.map_err(status_of)?)
        .ok_or_else(|| Status::internal("the report made is not the one asked for"))
}

/// The page's message from its reports, made in the order of
/// [`convert::page_queries`].
fn page_report(made: Vec<Result<Report, ProgramError>>) -> Result<pb::PageReport, Status> {
    let mut made = made.into_iter();
    let mut next = || -> Result<Result<Report, ProgramError>, Status> {
        made.next()
            .ok_or_else(|| Status::internal("a report of the page is missing"))
    };
    let mut page = pb::PageReport {
        distribution: Some(message(next()?)?),
        migration: Some(message(next()?)?),
        value_ranks: Some(message(next()?)?),
        value_bands: Some(message(next()?)?),
        rfm: Some(message(next()?)?),
        segments: Some(message(next()?)?),
        clusters: Some(message(next()?)?),
        liability: Some(message(next()?)?),
        ..pb::PageReport::default()
    };
    match next()? {
        Ok(prediction) => page.prediction = Some(message(Ok(prediction))?),
        Err(why) => page.no_prediction = status_of(why).message().to_owned(),
    }
    Ok(page)
}
