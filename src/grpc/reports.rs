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
    /// Admits the caller, makes the report its request asks for off the
    /// async workers, and encodes it as the message `P` answers with.
    async fn report<R, P: convert::OfReport>(
        &self,
        request: Request<R>,
        query: impl FnOnce(R, chrono::NaiveDate) -> Result<Query, ProgramError>,
    ) -> Answer<P> {
        let _admitted = self.admit(&request, Action::Report)?;
        let program = std::sync::Arc::clone(self.program());
        let query = query(request.into_inner(), program.today()).map_err(status_of)?;
        let report = tokio::task::spawn_blocking(move || program.report(query))
            .await
            .map_err(|_| Status::internal("the report stopped unexpectedly"))?
            .map_err(status_of)?;
        P::of_report(report)
            .map(Response::new)
            .ok_or_else(|| Status::internal("the report made is not the one asked for"))
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
        let _admitted = self.admit(&request, Action::Report)?;
        let program = std::sync::Arc::clone(self.program());
        let queries =
            convert::page_queries(request.into_inner(), program.today()).map_err(status_of)?;
        let made = tokio::task::spawn_blocking(move || program.reports(queries))
            .await
            .map_err(|_| Status::internal("the reports stopped unexpectedly"))?
            .map_err(status_of)?;
        page_report(made).map(Response::new)
    }
}

/// The page's message from its reports, made in the order of
/// [`convert::page_queries`].
fn page_report(made: Vec<Result<Report, ProgramError>>) -> Result<pb::PageReport, Status> {
    let mut made = made.into_iter();
    let mut next = || -> Result<Result<Report, ProgramError>, Status> {
        made.next()
            .ok_or_else(|| Status::internal("a report of the page is missing"))
    };
    fn message<P: convert::OfReport>(made: Result<Report, ProgramError>) -> Result<P, Status> {
        P::of_report(made.map_err(status_of)?)
            .ok_or_else(|| Status::internal("the report made is not the one asked for"))
    }
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
